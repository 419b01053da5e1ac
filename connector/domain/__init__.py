"""Pure domain: data and decisions. No Flask, no SQL, no HTTP, no clock reads."""
