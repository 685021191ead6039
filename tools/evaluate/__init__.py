"""``retroguard evaluate PATH``: score the streaming detector on recordings.

Every recording (a SisFall directory, a directory of traces, or one file) is
streamed sample by sample through a detector built by the *same*
:func:`~firmware.detection.build_detector` call the monitor makes, at the
monitor's sample rate (recordings at other rates are resampled), with no
look-ahead and no whole-file normalisation. Files are spread over the cores.

What is measured
    * **fall output** (``FALL`` detections): sensitivity over fall recordings
      (any FALL anywhere in the file), specificity over ADL recordings (no
      FALL anywhere).
    * **trip output** (the relay: ``STUMBLE`` or ``FALL``): on falls that
      start while walking or jogging (SisFall F01-F07), the share tripped
      *before impact* and the lead time from the first trip to impact (median
      and 10th percentile over the falls tripped in time); trips per hour of
      walking and jogging (D01-D04); the share of D18 recordings (stumble
      without a fall) and of the other ADLs that trip.
    * **impact time**: the header's ``impact_t`` where a trace has one (KFall:
      the video-labelled impact), otherwise the documented rule
      (:func:`~tools.evaluate.impact.fall_impact_t`): the sample of peak
      acceleration magnitude among those after which the trunk lies within
      ``LANDING_TO_LYING_S`` (SisFall has no impact labels).
    * **backward falls** (F02, F11, F14) as their own group.

The subject split
    Subjects split deterministically by id (:func:`tools.datasets.
    is_tuning_subject`): odd subject numbers form the *tuning* half (the only
    one thresholds were chosen on), even numbers the *held-out* half. The
    held-out figures are the ones that count; ``--split`` picks which half the
    top-level JSON figures describe (all three are always included).

The modules, each importing only those listed after it (pyproject.toml's
import contracts hold them to it)
    ``cli``         the command line: arguments, settings, checks, outputs
    ``report``      the printed table, from the figures
    ``runner``      many files over the cores, the progress line
    ``figures``     the JSON document of figures, from the per-file results
    ``scoring``     one recording through one detector, into a ``FileResult``
    ``result``      ``FileResult``, the per-file record everything is made from
    ``impact``      the impact time of an unlabelled fall
    ``transforms``  other mountings, gyro calibrations, time reversal
"""
