"""crossintel: shared drug-trafficking intelligence and case service of the CROSS units and OFAST."""
