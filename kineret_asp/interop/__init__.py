"""Health IT standards: FHIR R4 Bundles, the KB's code tables, CDS Hooks and CRD, the adaptive questionnaire."""
