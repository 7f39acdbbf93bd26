// placeholder: the tuned kernel lands here
