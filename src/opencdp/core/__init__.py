"""The domain core: every rule of OpenCDP lives here, whichever surface a request came through."""
