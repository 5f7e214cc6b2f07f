"""Scale-out paths: distributed labelling (Ray). Optional extras; the CPU path never imports them."""
