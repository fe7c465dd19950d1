"""The call log (Asterisk's cdr table): service, pages, API."""
