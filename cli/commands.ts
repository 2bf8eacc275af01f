// Registration of implemented subcommands (each loaded lazily so --help is fast).
import { registerCommand } from "./main.js";

void registerCommand;
