import { Injectable, type PipeTransform } from '@nestjs/common';
import { identifierProblem } from '../common/identifier.js';
import { invalidRequest } from './json-body.js';

/** Validates an id route parameter (see `IDENTIFIER_PATTERN`): `@Param('id', new IdParamPipe('account id'))`. */
@Injectable()
export class IdParamPipe implements PipeTransform<unknown, string> {
  constructor(private readonly field = 'id') {}

  transform(value: unknown): string {
    const problem = identifierProblem(value, this.field);
    if (problem !== undefined) throw invalidRequest(problem);
    return value as string;
  }
}
