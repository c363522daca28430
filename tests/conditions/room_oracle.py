"""The oracle of the noisy condition's room: pyroomacoustics' own room.simulate()."""
import pyroomacoustics as pra


def simulated_microphone(room, absorption, order, fs, clean, delay, gain):
    """What pyroomacoustics' room.simulate() records at the microphone of `room` (the
    drawn parameters: room_*_m, source_*_m, mic_*_m) for `clean`, aligned on the direct
    path (`delay` samples) and scaled by `gain`, as long as `clean`.

    On one thread: the noisy condition's response is the one its builder computes on one
    thread (refimpl.conditions.rir); on several threads it sums float32 partial sums in
    another order, which moves the last bits."""
    dims = [room["room_length_m"], room["room_width_m"], room["room_height_m"]]
    shoebox = pra.ShoeBox(dims, fs=fs, materials=pra.Material(absorption), max_order=order)
    shoebox.add_source([room["source_x_m"], room["source_y_m"], room["source_z_m"]],
                       signal=clean)
    shoebox.add_microphone([room["mic_x_m"], room["mic_y_m"], room["mic_z_m"]])
    threads = pra.constants.get("num_threads")
    pra.constants.set("num_threads", 1)
    try:
        shoebox.simulate()
    finally:
        pra.constants.set("num_threads", threads)
    return shoebox.mic_array.signals[0][delay:delay + len(clean)] * gain
