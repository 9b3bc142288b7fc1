"""Staff accounts: users and roles, password hashing, sessions and bearer tokens, login
throttling, and the FastAPI dependencies every protected route uses."""
