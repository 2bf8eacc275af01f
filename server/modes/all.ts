// Loads every cluster mode so it registers itself in MODES (server/modes/mode.ts).
import "./sc.js";
import "./cf.js";
import "./lard.js";
