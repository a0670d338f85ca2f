"""The REST API: endpoints over the same services, selectors and FilterSets as the screens."""
