// Loaded by mocha before every spec (see .mocharc.json).
import 'reflect-metadata';

// Tests provoke failing casts and dropped replies on purpose; keep their logs quiet
// unless someone debugging asks for them.
process.env.COURIER_LOG ??= 'silent';
