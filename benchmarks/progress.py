"""Progress bars: tqdm's, or none where tqdm is missing (the GPU machines have
neither tqdm nor internet to install it; their logs are read afterwards anyway)."""
try:
    from tqdm import tqdm as progress
except ImportError:
    def progress(items, desc=None, **_):
        return items
