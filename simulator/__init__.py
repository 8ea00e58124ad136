"""Digital twin of the Isabellenhuette IEM-DCR DC meter."""
