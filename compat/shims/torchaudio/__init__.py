"""Stand-in for torchaudio in the compat virtualenv (never in the product).

LLaMA-Factory 0.9.5 imports torchaudio at the top of its multimodal plugin module, for audio inputs
only. No torchaudio release is built for the torch this machine keeps on disk (2.13.0, CPU); the
nearest pair that exists (torch 2.9.1 + torchaudio 2.9.1) is a several-GB CUDA download. datafix
exports carry no audio, so an audio call here is a bug in the check and says so.
"""


def _no_audio(*args, **kwargs):
    raise RuntimeError("torchaudio is not installed in the compat virtualenv: datafix exports carry no audio")


load = _no_audio


class functional:  # noqa: N801 - mirrors torchaudio.functional
    resample = staticmethod(_no_audio)
