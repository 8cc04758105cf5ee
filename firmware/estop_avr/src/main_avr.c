/*
 * Main loop of the e-stop board firmware for the ATmega328P. All protocol and board
 * logic is in the portable estop_app. This file only moves bytes and pin levels between
 * it and the hardware layer, once per loop pass.
 * NOTE: the pass time on the chip was not measured. The input sampling and the relay
 * update assume that a pass takes well under 1 ms.
 */
#include <stdint.h>

#include "estop_app.h"
#include "hal.h"

/* Build-time settings; override with -D, for example `make ESTOP_WATCHDOG_MS=200`. */
#ifndef ESTOP_WATCHDOG_MS
#define ESTOP_WATCHDOG_MS 100
#endif
#ifndef ESTOP_STATUS_PERIOD_MS
#define ESTOP_STATUS_PERIOD_MS 20
#endif
#define ESTOP_FIRMWARE_MAJOR 1
#define ESTOP_FIRMWARE_MINOR 0

/* Debounce times in ms. A press and a fault count quickly because they stop the machine.
 * A release and a cleared fault must be stable for longer because they allow a reset. */
#define BUTTON_PRESS_MS 2
#define BUTTON_RELEASE_MS 20
#define FAULT_RAISE_MS 2
#define FAULT_CLEAR_MS 50

_Static_assert(ESTOP_WATCHDOG_MS >= ESTOP_WATCHDOG_MS_MIN && ESTOP_WATCHDOG_MS <= ESTOP_WATCHDOG_MS_MAX,
               "ESTOP_WATCHDOG_MS must be within 5..60000");
_Static_assert(ESTOP_STATUS_PERIOD_MS >= ESTOP_STATUS_PERIOD_MS_MIN &&
                   ESTOP_STATUS_PERIOD_MS <= ESTOP_STATUS_PERIOD_MS_MAX,
               "ESTOP_STATUS_PERIOD_MS must be within 1..10000");

static const struct estop_app_config config = {
    .board =
        {
            .watchdog_ms = ESTOP_WATCHDOG_MS,
            .status_period_ms = ESTOP_STATUS_PERIOD_MS,
            .firmware_major = ESTOP_FIRMWARE_MAJOR,
            .firmware_minor = ESTOP_FIRMWARE_MINOR,
        },
    .button_press_ms = BUTTON_PRESS_MS,
    .button_release_ms = BUTTON_RELEASE_MS,
    .fault_raise_ms = FAULT_RAISE_MS,
    .fault_clear_ms = FAULT_CLEAR_MS,
};

static struct estop_app app;

int main(void)
{
    uint8_t received[16];
    uint8_t status_frame[ESTOP_STATUS_FRAME_SIZE];
    uint32_t now;
    uint32_t last_sample_ms;

    hal_init();
    now = hal_millis();
    if (estop_app_init(&app, &config, now, hal_button_raw_pressed(), hal_fault_raw()) != 0) {
        /* Unreachable while the static assertions above hold; stay stopped regardless. */
        for (;;) {
            hal_relay_set_open(1);
        }
    }
    hal_watchdog_start();
    last_sample_ms = now;

    for (;;) {
        size_t count;
        size_t free_space;
        size_t size;

        now = hal_millis();
        count = hal_uart_read(received, sizeof(received));
        if (count > 0) {
            estop_app_receive(&app, received, count, now);
        }

        /* Sample the inputs once per millisecond, the unit of the debounce times. */
        if (now != last_sample_ms) {
            estop_app_sample_inputs(&app, hal_button_raw_pressed(), hal_fault_raw(), now);
            last_sample_ms = now;
        }

        free_space = hal_uart_tx_free();
        if (free_space > sizeof(status_frame)) {
            free_space = sizeof(status_frame);
        }
        size = estop_app_poll(&app, now, status_frame, free_space);
        if (size > 0) {
            hal_uart_write(status_frame, size);
        }

        hal_relay_set_open(estop_app_relay_open(&app));
        hal_watchdog_feed();
    }
}
