"""syndicate."""
