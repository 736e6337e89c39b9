//! The PrismNamespace controller (to come).
