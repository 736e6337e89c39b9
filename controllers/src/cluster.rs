//! The PrismCluster controller (to come).
