"""Review's job kinds: the engine (pipelines) runs them over review's samples; their start forms,
views and upload handling live beside them."""
