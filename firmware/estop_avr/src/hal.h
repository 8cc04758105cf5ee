/*
 * Hardware layer of the e-stop board: the only interface between the portable firmware
 * logic and the microcontroller. hal_avr.c implements it for the ATmega328P; the host
 * simulator in test/ does not use it.
 */
#ifndef ESTOP_HAL_H
#define ESTOP_HAL_H

#include <stddef.h>
#include <stdint.h>

/*
 * Configures the pins (relay output driven to open first), the UART, the 1 ms timer tick,
 * and enables interrupts.
 */
void hal_init(void);

/* Milliseconds since hal_init(); wraps after 2^32 ms (49.7 days). */
uint32_t hal_millis(void);

/* Moves up to `capacity` received bytes to `out`; returns how many it moved. */
size_t hal_uart_read(uint8_t *out, size_t capacity);

/* Returns the free space of the transmit buffer in bytes. */
size_t hal_uart_tx_free(void);

/* Queues bytes for transmission without waiting. The caller checks hal_uart_tx_free()
 * first, because bytes that do not fit are dropped. */
void hal_uart_write(const uint8_t *data, size_t length);

/* Drives the relay: 1 de-energises it (contacts open, motor power cut), 0 closes it. */
void hal_relay_set_open(uint8_t open);

/* Raw level of the e-stop button input: 1 pressed (or wire broken), 0 released. */
int hal_button_raw_pressed(void);

/* Raw level of the fault input: 1 fault (or wire broken), 0 healthy. */
int hal_fault_raw(void);

/* Starts the microcontroller's own watchdog, which resets it when the main loop hangs. */
void hal_watchdog_start(void);

/* Restarts the microcontroller's watchdog period; call once per main loop pass. */
void hal_watchdog_feed(void);

#endif
