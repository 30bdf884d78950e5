"""Gogs side of the bridge: the API client, a throwaway real Gogs, converge."""
