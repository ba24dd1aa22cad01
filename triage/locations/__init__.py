"""Finding and placing location mentions in a post."""
