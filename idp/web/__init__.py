"""The edge shared by every page and endpoint: the one request-parameter reader (params), request helpers
(request), the one error-page renderer (errors) and the pages' messages (messages)."""
