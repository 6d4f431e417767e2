"""Identity: who is calling (principals), passwords, tokens, API keys, policies."""
