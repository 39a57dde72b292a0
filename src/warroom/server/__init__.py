"""warroom serve: the Alertmanager webhook, the investigations API, persisted reports and pages."""
