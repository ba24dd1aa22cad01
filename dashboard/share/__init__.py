"""One-time share links: a reporter shares GPS, photos or live camera from the phone's browser."""
