"""crossintel: the shared intelligence and case service of the CROSS units and OFAST."""
