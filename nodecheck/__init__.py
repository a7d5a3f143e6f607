"""nodecheck: can this Linux node run the Sysbox container runtime?"""

__version__ = "0.1.0"
