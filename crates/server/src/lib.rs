//! framewire hub (being written).
