"""Central's OCPP 1.6J endpoint (DESIGN.md §10): chargers that speak OCPP join the network beside the simulated CPs."""
