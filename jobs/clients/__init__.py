"""HTTP clients of the third parties: payment gateway, CRM, analytics collector."""
