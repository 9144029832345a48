"""The edge shared by every page and endpoint: the one request-parameter reader."""
