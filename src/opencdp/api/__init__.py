"""HTTP surfaces: thin translations between the wire and the domain core."""
