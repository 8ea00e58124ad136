"""Python driver for the Isabellenhuette IEM-DCR (port of the EVerest IsabellenhuetteIemDcr module)."""
