// Loads every cluster mode so it registers itself in MODES (server/modes.ts).
