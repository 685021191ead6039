"""Thresholds and time constants of the streaming fall detector.

Every field is a plain ``float``/``int``/``bool`` with a default, because the
firmware's TOML loader fills this dataclass from the ``[detector]`` table by
field introspection. Every threshold is in physical units (g, m/s, degrees,
degrees per second, seconds) rather than in samples or raw counts, so one
parameter set holds at any sampling rate and for any sensor.

The defaults were chosen on the *tuning* half of the SisFall subjects only
(see ``docs/detector.md``); the held-out half is what the figures report.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """Parameters of :class:`firmware.detection.retro.FallDetector`."""

    # --- orientation: where is "up" in the sensor frame --------------------
    warmup_s: float = 1.0
    """Seconds after (re)start spent learning gravity before any decision.

    The belt may be clipped in any orientation, so the detector first averages
    the accelerometer (the person is standing or walking) to find "up"."""
    gravity_tau_s: float = 0.5
    """Time constant (s) of the complementary filter pulling the gyro-propagated
    gravity direction toward the accelerometer. Short enough to cancel gyro
    drift and bias, long enough to average out the steps of walking."""
    accel_lowpass_s: float = 0.25
    """Time constant (s) of the low-pass on the accelerometer vector that the
    orientation filter corrects toward: long enough to average a gait cycle's
    linear acceleration away (jogging: single samples range 0-4 g)."""
    accel_gate_g: float = 0.2
    """The low-passed accelerometer corrects the gravity estimate only while
    its magnitude is within this many g of 1 g: during free fall or an impact
    it carries no direction information and the gyro alone propagates."""
    mounting_tolerance_deg: float = 45.0
    """When the mounting is known, a warm-up gravity direction further than
    this from the mounting's "up" means the wearer was not upright while the
    detector warmed up; the mounting's "up" is used as the reference instead."""
    upright_tau_s: float = 20.0
    """Time constant (s) of the upright reference: the trunk's usual gravity
    direction, followed slowly while the wearer is upright so that a belt that
    slips or sits crooked is absorbed, but a fall (seconds) is not."""
    upright_max_tilt_deg: float = 30.0
    """The upright reference only adapts while the trunk is within this angle
    of it: lying or bending never teaches the detector a new "upright"."""

    # --- vertical motion ------------------------------------------------------
    velocity_tau_s: float = 1.0
    """Leak time constant (s) of the vertical-velocity integrator. Integrating
    gravity-removed acceleration drifts; a leak of about one second keeps the
    drift bounded while a fall (0.4-1 s of downward acceleration) still builds
    its full velocity."""

    gravity_level_tau_s: float = 10.0
    """Time constant (s) of the running 1 g level subtracted before
    integrating: the mean vertical specific force, which over whole strides
    is exactly the sensor's own 1 g (it absorbs the accelerometer's scale
    error and barely moves in the second a fall takes). Seeded by standing
    still during the warm-up; without that, a plain average of everything
    seen until this much has been seen."""
    gravity_level_lag_s: float = 1.0
    """The level is taken from the samples this many seconds old, so that a
    fall in progress (under a second) does not enter its own reference."""
    gravity_level_min_s: float = 1.0
    """Without a standing seed, the level counts as known after this many
    seconds of (lagged) samples; until then the rules on downward velocity
    alone wait: a warm-up taken in motion had read the first strides of a
    jog as 1.07-1.13 g, a phantom descent of 0.7-1.3 m/s."""

    # --- stumble / loss of balance (pre-impact; opens the relay) --------------
    stumble_velocity_mps: float = 0.6
    """Downward trunk velocity (m/s) that, together with a tilt, means the body
    is going down faster than any step, squat or sit allows."""
    stumble_tilt_deg: float = 33.0
    """Trunk tilt from upright (degrees) required with the velocity above. The
    rule has no activity gate (it must catch a trip while jogging, F05), so
    its tilt keeps a margin over fast jogging: with the gyro read at the
    ITG3200 datasheet's factor (14 % above SisFall's readme, see
    docs/detector.md) jogging reaches 30-32 deg at 0.6-1 m/s down; at 33 deg
    two of those three tuning-half trips go, at no cost on the tuning half
    (one held-out F05 trips at impact instead of before)."""
    stumble_fast_velocity_mps: float = 2.5
    """Downward velocity (m/s) that trips without a tilt condition (a vertical
    collapse). Well above the 1.5-2 m/s that the bounce of jogging reaches in
    this estimate: velocity alone cannot tell jogging from falling."""
    balance_score: float = 18.0
    """Loss-of-balance score (m/s x degrees): downward velocity times trunk
    tilt above which the body is going down *and* leaving upright together.
    18 is the first corner of the descent-with-tilt rule (0.6 m/s at 30 deg); the
    product also trips at 0.9 m/s and 20 deg or 0.45 m/s and 40 deg, which
    falls reach 50-100 ms earlier than both separate thresholds. Walking
    stays below 9.6, the onset of jogging reached 13.4 (SisFall tuning half,
    gated as below, without the extrapolation)."""
    balance_extrapolate_s: float = 0.1
    """During calm gait (activity below ``balance_extrapolate_max_activity_g``)
    the score uses the tilt this many seconds ahead at its current rate of increase
    (``tilt + 0.1 s x tilt speed``, never less than the tilt): a trunk tipping
    over at 100 deg/s counts 10 deg more. On the tuning half it moves the
    median lead from 285 to 300 ms (200 Hz; 280 to 320 ms at 25 Hz), leaves
    the walking scores alone (at most 9.6: while walking the tilt is not rising
    when the body moves down) and lifts the onset-of-jogging score from 13.4
    to 14.9 (D04_SE03); 0.1 s is the smallest value that gives the gain
    (0.2 s: the same 300 ms, jogging 16.5). Off during jogging, whose bounce
    swings the trunk by as much as a stumble."""
    balance_extrapolate_max_activity_g: float = 0.35
    """Gait activity (g) up to which the extrapolation applies: calm gait, as
    for the rotation rule. Off above it: the bounce of jogging swings the
    trunk as much as a stumble (without this gate the onset-of-jogging score
    reaches 16.2 at 0.1 s, and 0.2 s trips a tuning-half jog)."""
    tilt_speed_tau_s: float = 0.05
    """Smoothing (s) of the tilt's rate of change used above: averages out
    sample noise, short against the 0.3-0.6 s a falling trunk takes to tip."""
    balance_min_velocity_mps: float = 0.4
    """The score only counts with at least this downward velocity (m/s)..."""
    balance_min_tilt_deg: float = 15.0
    """... and at least this tilt (degrees): the sway of walking never
    enters the product."""
    balance_max_activity_g: float = 0.6
    """... and while the gait is not vigorous (activity below this, g): the
    bounce of jogging (about 1 g) reaches 0.6 m/s and 25-30 deg together,
    so jogging is left to the separate thresholds. On the tuning half the
    jogging bounce crosses the score only at activity >= 0.78 g, while trips
    during a slow jog (F05) cross it at 0.54-0.60 g: 0.6 takes those and
    keeps a margin to jogging (it was 0.5; 20 Hz band-limited input, which
    flattens the activity, still gives no walking or jogging trip)."""
    collapse_velocity_mps: float = 1.0
    """Upright collapse: downward velocity (m/s) ..."""
    collapse_gain_mps: float = 0.9
    """... of which at least this much (m/s) was gained since the body last
    bore its weight ..."""
    collapse_descent_s: float = 0.2
    """... going down without a pause for at least this long (s): the
    flight phase of a jog and a gentle jump leave the body unsupported for
    up to about 0.2 s, and their first strides come before the landing
    vigour has risen. Measured: at 0.1 s KFall jogging trips 35 times per
    hour and most jumps trip (KFall D04 61 -> 95 %), for one more backward
    slip tripped before impact (S06T34R04: 1.2 m/s down after 0.17 s of
    near free fall at 10 deg of tilt, then a 4 g contact)."""
    collapse_max_descent_s: float = 1.5
    """... and at most this long: a body cannot keep going down for longer
    than the pelvis is above the ground; a steady descent of seconds is a
    level error (reversed elderly jogging read 3.6 s)."""
    collapse_max_vigour_g: float = 0.5
    """... outside vigorous gait (landing vigour below this, g)."""
    balance_max_vigour_g: float = 0.55
    freefall_min_s: float = 0.3
    """Continuous free-fall time (s) that trips on its own: 0.3 s of free fall
    is a 44 cm drop, far longer than the flight phase of jogging (up to
    0.2 s)."""
    freefall_g: float = 0.5
    """Acceleration magnitude (g) below which the body counts as in free fall."""
    rotation_gain_deg: float = 12.0
    """Trunk tilt gained (degrees) within ``rotation_window_s`` that, with the
    two conditions below, is a loss of balance: a stumble throws the trunk
    15-30 degrees in 150-300 ms, while walking sways it by a few degrees."""
    rotation_window_s: float = 0.3
    """Window (s) over which the tilt gain is measured."""
    rotation_tilt_deg: float = 15.0
    """The trunk must also be at least this far (degrees) from upright."""
    rotation_max_activity_g: float = 0.35
    """The rotation rule applies only while the gait is calm: running mean of
    | |a| - 1 g | below this (g). Walking stays under ~0.3 g; jogging (~1 g)
    sways the trunk as much as a stumble does."""
    rotation_min_activity_g: float = 0.06
    """... and at least this (g): restricts the rotation rule to gait, so
    that sitting down or bending from quiet standing (0.01-0.03 g) does not
    trip. Slow treadmill walking (0.3 m/s) still reads about 0.1 g."""
    activity_tau_s: float = 1.0
    """Time constant (s) of that running mean."""
    vigour_tau_s: float = 0.5
    """Time constant (s) of the landing vigour: the running mean of twice
    the excess of |a| over 1 g (the landings of gait; a falling body reads
    below 1 g until it hits). Jogging shows it from its first steps, while
    the activity mean above takes a second to get there."""

    stumble_upright_within_s: float = 5.0
    """A loss of balance starts from standing, walking or at worst sitting,
    not from lying: the stumble rules apply only if the trunk was less than
    ``stumble_upright_tilt_deg`` from upright at some moment in the last this
    many seconds. Someone lying in bed, or on the floor after a fall, rolls
    and sits up with the velocities and tilts of a stumble (SisFall D14,
    rolling over in bed: 64 % of held-out recordings tripped without this,
    none with it). Any value from 2 s up gives the same figures on SisFall;
    the relay is long open by then anyway after a fall."""
    stumble_upright_tilt_deg: float = 65.0
    """"Not lying" for the condition above (degrees from upright). Beyond the
    50 deg of ``lying_tilt_deg`` on purpose: someone slumped forward in a
    chair at 52-57 deg who then falls off it (F13_SA11_R03, tuning) must still
    trip. At 50 deg that fall tripped nothing at all, for 14 fewer tuning
    D14 recordings tripping (25.5 % of them trip at 65 deg, 0 % at 50)."""
    stumble_refractory_s: float = 2.0
    """Minimum time (s) between two stumble detections of one episode ..."""
    stumble_clear_s: float = 0.3
    """... unless no stumble rule held for this long (s) in between: then
    the next is a new episode (sitting down hard, then falling off the
    chair) and is reported on its own."""

    # --- fall confirmation (upright, impact, then lying) ----------------------
    impact_g: float = 2.0
    """Peak acceleration magnitude (g) of a *firm* impact (with the impulse
    below), confirmed by ``confirm_window_s`` of lying. Low, because falls
    onto soft ground (the SisFall mats, a treadmill belt) peak at only 2-4 g;
    the posture conditions below carry the specificity. Any landing above
    ``soft_impact_g`` is followed; the softer ones need the long lie."""
    impact_window_s: float = 0.1
    """Half-width (s) of the window around the impact peak over which the
    impact impulse below is measured."""
    impact_impulse_gs: float = 0.11
    """Impact impulse (g x s) of a *firm* impact: the integral of
    | |a| - 1 g | over +-``impact_window_s`` around the peak, i.e. the speed
    change absorbed at the contact (0.11 g s = 1.1 m/s). A fall onto the
    floor, even onto a mat, stops the body within about 0.1 s (tuning half:
    1st percentile 0.11 g s); lying down onto a bed or a soft surface spreads
    the same deceleration over a longer, lower-g contact (0.01-0.10 g s).
    Below it the landing is soft: only a long lie (``soft_confirm_s``)
    confirms the fall."""
    soft_impact_g: float = 1.5
    """A *soft* landing: a peak above this (g) but short of ``impact_g``, or
    one whose impulse stays below ``impact_impulse_gs``. It can still start a
    fall, confirmed only by a long lie (``soft_confirm_s``): someone who
    faints off a chair slumps to the floor at 1.7-2.2 g and 0.06-0.09 g s
    (SisFall F13), as soft as lying down onto a bed. Set well below the
    1.7 g because a lower sampling rate (and its anti-aliasing) shaves the
    peak: the same falls read 0.05-0.15 g less at 50 Hz."""
    soft_confirm_s: float = 6.0
    """After a soft landing the trunk must lie (same conditions and tolerance
    as after an impact) for this many seconds before the FALL is confirmed:
    a person who chose to lie down gets up again or stays put, a fainted one
    stays down. SisFall subjects lying down onto a bed sit up again after
    2-5 s (D12, D13); the value is the shortest on the tuning half that
    keeps those out (4 s: 13 false FALLs, 5 s: 6, 6 s: 1, 7 s: 1 but two
    falls fewer), so read it as "longer than a deliberate short rest"."""
    drop_min_s: float = 0.2
    """A landing met at the end of at least this much free fall (s, below
    ``freefall_g``: 0.2 s is a 20 cm drop) is a fall candidate whatever the
    posture before it: someone rolling off a bed lies before and after the
    fall, but lying down deliberately never goes through the air. For such
    a landing "lying" is judged without the rise over the pre-event posture
    (``lying_rise_deg``)."""
    soft_min_turn_dps: float = 100.0
    """A *soft* landing confirms by the long lie only if the body got there
    out of control: the trunk left upright faster than this (deg/s) ...
    (a deliberate recline onto a bed turns it at 50-90 deg/s)"""
    soft_min_descent_mps: float = 0.4
    """... or the body went down faster than this (m/s) in the
    ``descent_window_s`` before it. Lying down on a bed on purpose is slow
    descent, low impact, controlled rotation (D12_SA08_R04: 0.24 m/s, 50
    deg/s, then 6 s lying: a false FALL before); every soft fall of both
    datasets turned faster or went down faster (the closest: 108 deg/s at
    0.31 m/s, 88 deg/s at 0.42 m/s)."""
    upright_before_deg: float = 50.0
    """The trunk must have been within this tilt (degrees) of upright..."""
    upright_before_s: float = 2.0
    """... at most this many seconds before the impact: a fall starts from
    standing, walking or sitting, never from lying."""
    lying_tilt_deg: float = 50.0
    """Trunk tilt from upright (degrees) that counts as lying or slumped on
    the ground after an impact."""
    lying_rise_deg: float = 35.0
    """Lying is judged against the pre-event posture too: the trunk must lie
    beyond the least tilt it had in the ``upright_before_s`` before the
    impact plus this many degrees (and beyond ``lying_tilt_deg``). A fall
    goes from upright or seated to lying (tuning half: at least 55 degrees
    more than before), while someone already slumped at 30 degrees who drops
    into a chair and ends at 55 degrees has gained only about 20 (D11,
    elderly)."""
    confirm_delay_s: float = 0.5
    """After an impact the trunk may still be moving; lying is judged from
    this many seconds after the impact on..."""
    confirm_window_s: float = 2.0
    """... until this many seconds after it: lying through that window
    confirms the fall (and the FALL detection comes at the end of it)."""
    stepping_after_s: float = 1.0
    """A fall ends the gait: a landing followed by another contact (above
    ``soft_impact_g``) with the trunk not lying (a step) more than this many
    seconds later is not confirmed. A body on the
    ground may bounce or brace within the first second; a climber keeps
    landing every half second (D06_SA10_R05, stairs quickly, trunk leaning
    20-30 deg: it passed the hard-impact path)."""
    confirm_upright_max_s: float = 0.15
    """Time (s) within that window the trunk may spend back above
    ``lying_tilt_deg`` without cancelling the fall: after an impact the
    trunk rebounds or rolls for a moment (10 % of the 1.5 s window); a
    person who sits or stands back up stays above it far longer."""

    hard_impact_g: float = 3.5
    """A *hard* impact: peak above this (g) ..."""
    hard_impact_impulse_gs: float = 0.15
    """... and impulse above this (g x s; 1.5 m/s absorbed in 0.2 s). After
    a hard impact the trunk need only stay beyond ``hard_down_tilt_deg``
    rather than lying: a fall that ends sitting on the floor leaves the trunk
    at 15-45 degrees, which by tilt alone is a seated person, but sitting
    down onto a chair, however quickly, does not hit this hard."""
    hard_descent_mps: float = 0.2
    """... and a downward trunk velocity above this (m/s) at some moment in
    the ``descent_window_s`` before the peak: a fall that ends sitting on the
    floor drops the body (tuning half: at least 0.47 m/s before every such
    fall), whereas an elderly person dropping back onto a chair they were
    half rising from lands hard with the trunk not moving down (-0.3 to
    -0.05 m/s, D11)."""
    descent_window_s: float = 1.0
    """Window (s) before the impact peak over which the peak downward
    velocity for ``hard_descent_mps`` is taken."""
    hard_down_tilt_deg: float = 20.0
    """Tilt (degrees) the trunk must stay beyond after a hard impact (with the
    same ``confirm_upright_max_s`` tolerance) to confirm the fall."""

    # --- no recovery (escalation) ---------------------------------------------
    still_gyro_dps: float = 20.0
    """Angular rate (deg/s) below which the wearer counts as motionless."""
    still_accel_g: float = 0.1
    """Deviation of the acceleration magnitude from 1 g below which the wearer
    counts as motionless."""
    no_recovery_s: float = 10.0
    """Seconds lying still after a confirmed fall before NO_RECOVERY fires."""
