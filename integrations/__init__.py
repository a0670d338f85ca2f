"""The domain: the inventory of connected applications, its policy, and the services that sync it."""
