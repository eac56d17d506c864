"""The Stroke AID bot service: a Telegram client of the platform's REST API (no models)."""
