"""Health IT standards: CDS Hooks and Da Vinci CRD, the DTR adaptive questionnaire, FHIR errors."""
