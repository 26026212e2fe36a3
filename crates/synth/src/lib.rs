//! ballast synth (not built yet).
