"""Rules evaluated over stored points, the notification pipeline's decisions stored, deliveries sent."""
