"""Downloads: the downloader, transfers, helper processes, safe unpacking and file writes."""
