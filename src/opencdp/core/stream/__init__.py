"""The Stream API's domain: browsers, events, sessions, carts and orders assembled from events."""
