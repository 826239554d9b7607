"""Super-resolution: MATLAB-compatible data and scoring, and the ESPCN upscaler.

Import from the modules (``srpipe.sr.upscaler``, ...): this package imports nothing itself,
so that the upscaler can run without torch."""
