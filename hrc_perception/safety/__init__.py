"""Speed and separation monitoring (ISO/TS 15066): people and robot as capsules, the
protective separation distance, and the fail-safe verdict."""
