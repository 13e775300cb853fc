"""The HTTP API, review page and feedback store."""
