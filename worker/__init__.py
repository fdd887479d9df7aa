"""videoscan's worker: queue, jobs, storage, pipeline and command line."""
