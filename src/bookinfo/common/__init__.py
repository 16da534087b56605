"""What every Bookinfo service shares: the process runner, request logging, header propagation."""
