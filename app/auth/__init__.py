"""Authentication (tokens, passwords, the principal) and authorisation (the policy)."""
