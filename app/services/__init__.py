"""Domain logic and queries. Services take (session, principal, …) and never commit."""
