//! The PrismPattern controller (to come).
