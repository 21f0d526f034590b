"""The HTTP service's front: allowed hosts, CORS, client authentication, the OpenAPI document and its offline page."""
